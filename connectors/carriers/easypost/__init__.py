"""EasyPost as a carrier: one EasyPost account buys labels of the carriers it aggregates (USPS, UPS, …)."""
