"""E-mail and SMS: senders, SMS segmentation, templates and MIME. A leaf: the outbox lives in rooms/."""
