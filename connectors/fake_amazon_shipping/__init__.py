"""A fake of Amazon Merchant Fulfillment v0 and Amazon Shipping v2 (issue 18); for now, their schemas."""
