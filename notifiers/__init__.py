"""Notification channels (SMS, e-mail, portal inbox): one module each; built in the alerting issue."""
