"""Geocoding and travel time behind one interface; see base.GeoBackend and service.get_geo."""
