"""manage.py flagsync."""
