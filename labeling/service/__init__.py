"""The HTTP API for services (``labelloop api``): items in from production, labels and
predictions out, rounds and the queue for clients other than the browser; and the webhooks'
sender."""
