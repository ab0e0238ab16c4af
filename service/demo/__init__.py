"""The demo room: sample patients and the draft orders of the order-entry page (`/demo`)."""
