"""The real services an experiment runs against: Kafka (KRaft) and Toxiproxy."""
