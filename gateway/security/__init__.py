"""Keys, certificates and CMS signatures (RFC 5652): cryptography for the primitives,
pyasn1-modules for the structures cryptography does not read back."""
