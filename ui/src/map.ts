// The city map (MapLibre GL), reusable by every screen (review mini map, city map, later the
// dispatcher map): the city's own vector layers served by the node (districts, streets) when
// no tile server is configured, so it is never blank and nothing is fetched from outside.
import maplibregl from "maplibre-gl";
import "maplibre-gl/dist/maplibre-gl.css";

import { t } from "./i18n";
import type { Site } from "./types";

export type MapLib = maplibregl.Map;
export type Feature = GeoJSON.Feature<GeoJSON.Point, Record<string, unknown>>;

/// MapLibre's own strings (titles and labels of its controls), from our catalogues.
const MAPLIBRE_KEYS = ["Map.Title", "NavigationControl.ZoomIn", "NavigationControl.ZoomOut", "NavigationControl.ResetBearing", "Popup.Close", "Marker.Title"];

const EMPTY: GeoJSON.FeatureCollection = { type: "FeatureCollection", features: [] };

function style(tiles: string | null): maplibregl.StyleSpecification {
  const layer = (name: string) => `${location.origin}/api/city/layers/${name}`;
  const sources: maplibregl.StyleSpecification["sources"] = {
    districts: { type: "geojson", data: layer("districts") },
    streets: { type: "geojson", data: layer("streets") },
  };
  const layers: maplibregl.LayerSpecification[] = [
    { id: "background", type: "background", paint: { "background-color": "#eef1f5" } },
  ];
  if (tiles) {
    sources.tiles = { type: "raster", tiles: [tiles], tileSize: 256 };
    layers.push({ id: "tiles", type: "raster", source: "tiles" });
  }
  layers.push(
    { id: "districts-fill", type: "fill", source: "districts", paint: { "fill-color": "#dfe7f1", "fill-opacity": tiles ? 0.15 : 0.8 } },
    { id: "districts-line", type: "line", source: "districts", paint: { "line-color": "#7d8ea8", "line-width": 1.5 } },
    { id: "streets", type: "line", source: "streets", paint: { "line-color": "#ffffff", "line-width": 2 } },
  );
  return { version: 8, sources, layers };
}

/// A map over `site`'s bounds in `container`, on the site's tile server when `[http]
/// map_tiles_url` names one; `null` when the browser has no WebGL (the caller shows a message
/// instead of a blank area).
export function cityMap(container: HTMLElement, site: Site, interactive = true): MapLib | null {
  const tiles = site.map_tiles_url ?? null;
  try {
    const b = site.bounds;
    const map = new maplibregl.Map({
      container,
      style: style(tiles),
      bounds: [
        [b.west, b.south],
        [b.east, b.north],
      ],
      interactive,
      attributionControl: false,
      locale: Object.fromEntries(MAPLIBRE_KEYS.map((k) => [k, t("maplibre." + k)])),
      preserveDrawingBuffer: true,
    });
    if (interactive) map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
    return map;
  } catch {
    return null;
  }
}

/// Adds (or replaces the data of) a layer of points drawn as circles.
export function setPoints(map: MapLib, id: string, features: Feature[], color: maplibregl.ExpressionSpecification | string, radius = 5): void {
  const data: GeoJSON.FeatureCollection = { ...EMPTY, features };
  const apply = () => {
    const source = map.getSource(id) as maplibregl.GeoJSONSource | undefined;
    if (source) {
      source.setData(data);
      return;
    }
    map.addSource(id, { type: "geojson", data });
    map.addLayer({
      id,
      type: "circle",
      source: id,
      paint: { "circle-color": color as any, "circle-radius": radius, "circle-stroke-color": "#ffffff", "circle-stroke-width": 1 },
    });
  };
  if (map.isStyleLoaded()) apply();
  else map.once("load", apply);
}

export function point(lon: number, lat: number, properties: Record<string, unknown> = {}): Feature {
  return { type: "Feature", geometry: { type: "Point", coordinates: [lon, lat] }, properties };
}

/// Calls `onClick(properties)` when a feature of layer `id` is clicked.
export function onPointClick(map: MapLib, id: string, onClick: (properties: Record<string, unknown>) => void): void {
  map.on("click", id, (ev) => {
    const f = ev.features?.[0];
    if (f) onClick(f.properties as Record<string, unknown>);
  });
}

export { maplibregl };
