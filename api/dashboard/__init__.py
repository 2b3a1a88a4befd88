"""The dashboard: the reports as server-rendered pages with SVG charts (docs/reports.md,
"The dashboard"). The routes are api/routes/dashboard.py."""
