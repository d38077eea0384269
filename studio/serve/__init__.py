"""Serving the studio to many users: the job line, History, cleanup, logins and file access."""
