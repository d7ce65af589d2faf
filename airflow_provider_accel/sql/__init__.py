"""The refresh_sql validator: Spice's rules, and a security boundary."""
