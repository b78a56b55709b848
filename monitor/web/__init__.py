"""The HTTP side above the daemon: authentication, the /api/v1 handlers, the web pages."""
