"""The SQLite store: schema and migrations, scans with history, freshness, the lock, accounts
and cohort tables.  Nothing here imports Scrapy or Twisted."""
