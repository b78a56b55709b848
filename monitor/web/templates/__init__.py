"""The web pages' HTML, written with the standard library (``html.escape``, f-strings): no
template engine to install, and every value that reaches a page passes through one escape."""
