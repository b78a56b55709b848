"""Notification channels (SMS, e-mail, portal inbox): one module each, behind notifiers/base.py."""
