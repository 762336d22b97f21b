// What the API answers (see docs/api.md and src/api/).
export interface Me {
  user: string;
  roles: string[];
  language: string;
  csrf: string;
}
export interface Site {
  name: string;
  city: string | null;
  bounds: { south: number; west: number; north: number; east: number };
  map_tiles_url: string | null;
}
export interface Deadline {
  stage: string;
  due_at: string;
  reached_at: string | null;
  met: boolean;
  escalated: boolean;
  overdue: boolean;
  remaining_minutes: number;
}
export interface Appeal {
  number: string;
  category: string;
  source: string;
  status: string;
  position: { lat: number; lon: number };
  address: string | null;
  description: string | null;
  district: string | null;
  body_id: string | null;
  body_name: string | null;
  registered_at: string;
  registered_by: string;
  updated_at: string;
  evidence_count: number;
  deadlines: Deadline[];
}
export interface EvidenceItem {
  kind: string;
  uri?: string | null;
  data?: any;
}
export interface Evidence {
  id: number;
  source: string;
  source_ref: string;
  actor: string;
  observed_at: string;
  items: EvidenceItem[];
}
export interface Verdict {
  number: string;
  category: string;
  verdict: string;
  reason: string | null;
  actor: string;
  at: string;
}
export interface ReviewItem {
  appeal: Appeal;
  evidence: Evidence[];
  camera: string | null;
  camera_history: Verdict[];
}
export interface TimelineEvent {
  seq: number;
  at: string;
  actor: string;
  kind: string;
  from_status: string | null;
  to_status: string | null;
  reason: string | null;
  data: any;
}
export interface Service {
  code: string;
  name: string;
  stages: { name: string }[];
}
export interface Camera {
  id: string;
  name: string;
  state: string;
  reason_text: string;
  frames_decoded: number;
  frames_dropped: number;
  reconnects: number;
  last_frame_age_s: number | null;
  lat: number;
  lon: number;
  address: string;
}
export interface Change {
  id: number;
  number: string;
  kind: string;
  to_status: string | null;
}
