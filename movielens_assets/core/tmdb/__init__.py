"""TMDb enrichment: async client, landing zone of raw payloads, star-schema builder."""
