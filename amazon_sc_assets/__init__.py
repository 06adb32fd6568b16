"""Dagster assets that replicate Amazon Seller Central order-tracking reports into a warehouse."""
