"""service layer of the news service."""
