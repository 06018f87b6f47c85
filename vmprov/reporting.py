"""Error reports (Django's debug page, error emails) never show a secret.

Django hides settings named like API, TOKEN, KEY, SECRET, PASS and SIGNATURE. vmprov's connection URLs
(DATABASE_URL, REDIS_URL, the cache's LOCATION) can hold passwords too, so they are hidden as well.
"""

import re

from django.views.debug import SafeExceptionReporterFilter


class SecretsFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile("API|TOKEN|KEY|SECRET|PASS|SIGNATURE|URL|LOCATION|DSN|CONN_STR", flags=re.IGNORECASE)
