"""The OpenReview study: normalized tables (schema), offline dumps and the live scraper, the analyses."""
