"""Vendor landing formats (SPEC 3), one declaration per module; a new vendor is a new module listed here.

Detection tries them in this order, then the canonical columns (flows/sources/files.py).
"""

from __future__ import annotations

from flows.sources.vendors.cboe_datashop import CBOE_DATASHOP
from flows.sources.vendors.cboe_delayed import CBOE_DELAYED
from flows.sources.vendors.format import VendorFormat
from flows.sources.vendors.yahoo_daily import YAHOO_DAILY
from flows.sources.vendors.yfinance import YFINANCE

VENDOR_FORMATS: list[VendorFormat] = [CBOE_DATASHOP, YFINANCE, CBOE_DELAYED, YAHOO_DAILY]

__all__ = ["CBOE_DATASHOP", "CBOE_DELAYED", "VENDOR_FORMATS", "YAHOO_DAILY", "YFINANCE", "VendorFormat"]
