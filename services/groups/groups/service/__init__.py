"""service layer of the groups service."""
