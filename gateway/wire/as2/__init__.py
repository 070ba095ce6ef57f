"""AS2 (RFC 4130) on the wire, sans I/O: MIME entities and multiparts (RFC 2045-2046, 1847),
the MIC and its micalg negotiation (RFC 4130 section 7.3), and the disposition notification
fields of an MDN (RFC 3798).  Nothing here decrypts or verifies: security.as2 does, on top."""
