//! Kinds of responsible bodies (district administrations, utilities, KSK/OSI, …).

/// What kind of organisation a responsible body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyKind {
    DistrictAdministration,
    CityDepartment,
    UtilityService,
    HousingCooperative,
    ElevatorCompany,
    Other,
}
