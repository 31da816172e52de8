"""Amazon Shipping v2 as a carrier: ``getRates`` → ``purchaseShipment`` → ``getShipmentDocuments`` →
``cancelShipment``, and ``getTracking``. See ``client.py``."""

from .client import AmazonShippingCarrier, AmazonShippingCredentials, AmazonShippingPolicy

__all__ = ["AmazonShippingCarrier", "AmazonShippingCredentials", "AmazonShippingPolicy"]
