"""Human-readable reports (EDA)."""
