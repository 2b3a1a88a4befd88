"""Clients for the shop platforms' admin APIs (Shopify, WooCommerce).

The outbound side of the shop integrations: creating discount codes in the shop and reading
its customers and orders for a back-fill. Like `messaging`, it knows HTTP and the platforms'
shapes, never the journeys; the webhook side (platform payloads into events) is in
`core/intake`.
"""
