"""Webhooks: POST the catalog's events to other systems, signed, retried, and logged.

    hook, secret = wb.webhooks.subscribe("https://ci.example/hooks",
                                         ["model_version_created", "model_alias_set"])
    with Dispatcher(wb.catalog) as dispatcher:     # `weightbase server` runs one for you
        dispatcher.run_once()
    wb.webhooks.deliveries(hook.id)

:mod:`~weightbase.webhooks.service` keeps the subscriptions and the delivery
log; :mod:`~weightbase.webhooks.delivery` sends; :mod:`~weightbase.webhooks.signing`
signs, and checks a signature on the receiving end.
"""

from weightbase.webhooks.delivery import Dispatcher
from weightbase.webhooks.service import Delivery, Webhook, Webhooks
from weightbase.webhooks.signing import sign, verify_signature

__all__ = ["Delivery", "Dispatcher", "Webhook", "Webhooks", "sign", "verify_signature"]
