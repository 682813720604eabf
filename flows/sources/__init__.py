"""Sources: landing files and their vendor formats, the live yfinance source, the exchange calendar."""
