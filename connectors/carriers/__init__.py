"""Carriers: buying the shipping label inside the vault, so the buyer's address goes only to the carrier.

``interfaces.py`` is the contract every carrier keeps, ``registry.py`` lists the carriers, one package per
carrier holds its client (``shippo/``), and ``shipments.py`` buys a label for an order without ever buying
twice. Never imports Flask.
"""
