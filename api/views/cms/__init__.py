"""Registry endpoints: holders, products, stock, cards and their lifecycle, requests."""
