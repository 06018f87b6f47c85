"""WSGI entry point (gunicorn vmprov.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vmprov.settings")
application = get_wsgi_application()
