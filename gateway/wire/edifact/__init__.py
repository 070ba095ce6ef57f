"""UN/EDIFACT syntax (ISO 9735): service characters, lexer, envelope reader, writer."""
