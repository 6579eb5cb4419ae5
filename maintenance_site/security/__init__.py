"""Hardening shared by every edge: the client's address behind proxies, login lockouts (django-axes) and the
Content-Security-Policy per path."""
