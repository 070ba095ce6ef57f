"""RabbitMQ (aio-pika): topology, publishing with confirms, and consuming."""
