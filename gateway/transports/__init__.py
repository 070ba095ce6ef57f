"""Thin adapters between the network or file system and the intake: SFTP, mailboxes."""
