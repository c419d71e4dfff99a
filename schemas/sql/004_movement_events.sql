-- Every movement, whoever inserts it (stocksync's pull or the ParcelPilot
-- application), gets exactly one audit event in the outbox, in the same
-- transaction: the ledger and the audit topic cannot disagree. The payload
-- is schemas/json/movement_event.schema.json; unset text fields are null.

CREATE FUNCTION stocksync_movement_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (kind, msg_key, payload, movement_id, request_id)
    SELECT 'movement', m.unit_id::text,
           convert_to(json_build_object(
               'event', 'movement',
               'movement_id', m.id,
               'occurred_at', to_char(m.occurred_at AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'reason_code', m.reason_code,
               'note', nullif(m.note, ''),
               'qty_before', m.qty_before,
               'qty_after', m.qty_after,
               'qty_change', m.qty_change,
               'sku', u.sku,
               'item_name', u.name,
               'location_code', l.code,
               'serial', nullif(m.serial, ''),
               'batch', nullif(m.batch, ''),
               'lot', nullif(m.lot, ''),
               'order_ref', nullif(m.order_ref, ''),
               'client_id', u.client_id,
               'unit_id', m.unit_id,
               'integration_id', m.integration_id,
               'request_id', m.request_id)::text, 'UTF8'),
           m.id, m.request_id
      FROM added m
      JOIN inventory_units u ON u.id = m.unit_id
      JOIN locations l ON l.id = m.location_id
     ORDER BY m.id;
    RETURN NULL;
END $$;

CREATE TRIGGER movements_emit AFTER INSERT ON movements
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION stocksync_movement_events();
