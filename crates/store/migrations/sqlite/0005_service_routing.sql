-- A service's distribution settings (RoutingSettings as JSON). '{}' reads as every default, which
-- is what services created before this had.
ALTER TABLE services ADD COLUMN routing TEXT NOT NULL DEFAULT '{}';
