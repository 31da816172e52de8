"""Shippo as a carrier: one Shippo account buys labels of the carriers it aggregates (USPS, UPS, …)."""
