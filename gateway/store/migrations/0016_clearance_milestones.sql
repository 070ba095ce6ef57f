-- Issue 14: the clearance report (store.reports) read each day's delivery times and AEO status
-- from the outbox, whose rows carry the bodies: at 100,000 declarations a day that was about
-- 1.5 s of its 2.8 s.  Both are now kept where the report reads anyway.
--
-- agency_states.delivered_at: when the AMQP relay's publish of the message to that agency was
-- confirmed, its first time (a republish leaves it as it is: the agency had it from then;
-- answers.mark_overdue also counts from the first).  Written by outbox.mark_dispatched in
-- the transaction that marks the outbox row dispatched, so it is that row's dispatched_at.
ALTER TABLE agency_states ADD COLUMN IF NOT EXISTS delivered_at timestamptz;
-- messages.aeo: whether an authorised economic operator registered to the partner answers
-- for the message, as its deliveries' AMQP header `aeo` said (app.deliveries); written with
-- the routed message (processor) or when it is routed later (release, replay).  NULL: never
-- routed, or stored before this migration with no delivery left to say.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS aeo boolean;

-- The rows stored before: from their outbox rows; none (NULL) where there is none.
UPDATE agency_states s SET delivered_at = o.first_dispatched
  FROM (SELECT message_id, destination, min(dispatched_at) AS first_dispatched FROM outbox
        WHERE channel = 'amqp' AND message_id IS NOT NULL AND dispatched_at IS NOT NULL
        GROUP BY message_id, destination) o
  WHERE s.message_id = o.message_id AND s.agency = o.destination AND s.delivered_at IS NULL;
-- The latest delivery's header (a replay after the trader registry changed says the newer).
UPDATE messages m SET aeo = o.aeo
  FROM (SELECT DISTINCT ON (message_id) message_id,
          CASE properties -> 'headers' ->> 'aeo' WHEN 'true' THEN true WHEN 'false' THEN false
          END AS aeo
        FROM outbox WHERE channel = 'amqp' AND message_id IS NOT NULL
        ORDER BY message_id, id DESC) o
  WHERE m.id = o.message_id AND m.aeo IS NULL AND o.aeo IS NOT NULL;
