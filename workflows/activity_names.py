"""Activity names, shared by the workflow (which calls them by name, so no database
code enters its sandbox) and the activity implementations."""

EVALUATE = "journey.evaluate"
NEXT_LOCAL_TIME = "journey.next_local_time"
INSPECT_EVENT = "journey.inspect_event"
SEND_SMS = "journey.send_sms"
AWARD_POINTS = "journey.award_points"
UPDATE_SEGMENTS = "journey.update_segments"
SET_ATTRIBUTES = "journey.set_attributes"
UNSUBSCRIBE = "journey.unsubscribe"
EMIT = "journey.emit"
RECORD_PROGRESS = "journey.record_progress"
FINISH = "journey.finish"
