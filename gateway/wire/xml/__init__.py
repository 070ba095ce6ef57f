"""XML submissions, read sans I/O by a parser that trusts nothing in the document."""

from gateway.wire.xml.reader import XmlDocument, XmlLimits, read_xml

__all__ = ["XmlDocument", "XmlLimits", "read_xml"]
