-- A service's distribution settings (RoutingSettings as JSON). '{}' reads as every default, which
-- is what services created before this had.
ALTER TABLE services ADD COLUMN routing jsonb NOT NULL DEFAULT '{}'::jsonb;
