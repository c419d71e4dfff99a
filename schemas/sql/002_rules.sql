-- Per-integration sync rules (safety stock, listing cap, guardrail,
-- matching) and the per-unit safety-stock override. Defaults are the safe
-- ones; schemas/README.md explains each.

ALTER TABLE integrations
    ADD COLUMN buffer_qty bigint NOT NULL DEFAULT 0 CHECK (buffer_qty >= 0),
    ADD COLUMN max_list_qty bigint CHECK (max_list_qty >= 0),
    ADD COLUMN push_discontinued_as_zero boolean NOT NULL DEFAULT false,
    ADD COLUMN sku_case_insensitive boolean NOT NULL DEFAULT false,
    ADD COLUMN guard_max_zeroed integer NOT NULL DEFAULT 10
        CHECK (guard_max_zeroed >= 0),
    ADD COLUMN guard_max_drop_pct numeric NOT NULL DEFAULT 50
        CHECK (guard_max_drop_pct >= 0 AND guard_max_drop_pct <= 100),
    ADD COLUMN guard_max_item_drop bigint NOT NULL DEFAULT 500
        CHECK (guard_max_item_drop >= 0),
    ADD COLUMN batch_size integer CHECK (batch_size > 0),
    ADD COLUMN page_size integer CHECK (page_size > 0);

ALTER TABLE inventory_units
    ADD COLUMN buffer_qty bigint CHECK (buffer_qty >= 0);
