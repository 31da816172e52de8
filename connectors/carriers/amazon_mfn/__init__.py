"""Amazon Merchant Fulfillment v0 as a carrier: ``getOrderItems`` and ``getEligibleShipmentServices`` →
``createShipment`` → ``getShipment`` → ``cancelShipment``. See ``client.py``."""

from .client import MerchantFulfillmentCarrier, MerchantFulfillmentCredentials, MerchantFulfillmentPolicy

__all__ = ["MerchantFulfillmentCarrier", "MerchantFulfillmentCredentials", "MerchantFulfillmentPolicy"]
