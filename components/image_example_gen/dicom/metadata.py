"""DICOM header attributes that may become features, and those that never may.

An allow-list picks the attributes exported as `dicom/<snake_case_keyword>`
features (docs/design.md §3); a refusal rule keeps protected health information out
of Examples whatever the configuration (docs/design.md §7).

The refusal rule. A keyword is refused, with a ValueError at construction
time, when any of these holds:

1. it is not a keyword of pydicom's data dictionary, or it names a command or
   file meta attribute (groups 0000 and 0002) rather than a data set one;
2. it is listed in DICOM PS3.15 Annex E Table E.1-1, the Basic Application
   Level Confidentiality Profile (`PHI_KEYWORDS`), whatever the action the
   profile gives it;
3. its value representation is one that identifies people, places or events:
   PN (names), DA, DT, TM (dates and times), UI (UIDs), AS (ages) and AE
   (application entity titles). No allow-list can override this;
4. its value representation is free text (LO, SH, LT, ST, UT, UC, UR) and the
   keyword is not in `SAFE_TEXT_KEYWORDS`, a short list of technical
   attributes (the equipment's manufacturer and model, the CT reconstruction
   kernel) that are not in the profile;
5. its value representation is not a code string or a number (CS, IS, DS, US,
   SS, UL, SL, UV, SV, FL, FD): sequences (SQ), pixel data and other binary
   values (OB, OW, OF, OD, OL, OV, UN) and attribute tags (AT).

For the value representations a keyword may take ("US or SS"), every one must
pass. The rule is a positive list: an attribute the profile forgets is still
refused unless it is a code or a number. `extract` checks its keywords with
the same rule.
"""

import decimal
import functools
import math
import numbers
import re
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

from pydicom import datadict
from pydicom import multival
from pydicom import uid as uid_lib
from pydicom.dataset import Dataset

FeatureValues = Union[List[bytes], List[int], List[float]]

FEATURE_PREFIX = 'dicom/'
# Features the executor adds itself: they come from the file meta and from
# the frame loop, not from `extract`.
TRANSFER_SYNTAX_FEATURE = 'dicom/transfer_syntax_uid'
FRAME_INDEX_FEATURE = 'dicom/frame_index'

# Exported by default. Acquisition geometry, display and equipment
# attributes that explain an image's appearance and none of which identifies
# a patient. Rows and Columns are the stored size, which `image/height` and
# `image/width` are not after a resize. Decoding internals (SamplesPerPixel, BitsAllocated,
# PixelRepresentation, NumberOfFrames) are left to `image/channels`,
# `image/bit_depth` and FRAME_INDEX_FEATURE; add them with `extra` if needed.
DEFAULT_ATTRIBUTES: Tuple[str, ...] = (
    'Modality',
    'BodyPartExamined',
    'PhotometricInterpretation',
    'Rows',
    'Columns',
    'BitsStored',
    'PixelSpacing',
    'ImageLaterality',
    'ViewPosition',
    'WindowCenter',
    'WindowWidth',
    'VOILUTFunction',
    'RescaleSlope',
    'RescaleIntercept',
    'Manufacturer',
    'ManufacturerModelName',
)

# Free-text attributes (rule 4) that are safe to export: they describe the
# equipment, not the patient, the operator or the institution.
SAFE_TEXT_KEYWORDS: FrozenSet[str] = frozenset((
    'ConvolutionKernel',
    'Manufacturer',
    'ManufacturerModelName',
))

# DICOM PS3.15 (2024b) Annex E Table E.1-1, Basic Application Level
# Confidentiality Profile: every attribute in the table, as pydicom keywords
# (the private attributes row, (gggg,eeee) with odd gggg, has no keyword and
# is refused by rule 1).
PHI_KEYWORDS: FrozenSet[str] = frozenset((
    'AccessionNumber', 'AcquisitionComments', 'AcquisitionContextSequence',
    'AcquisitionDate', 'AcquisitionDateTime',
    'AcquisitionDeviceProcessingDescription', 'AcquisitionFieldOfViewLabel',
    'AcquisitionProtocolDescription', 'AcquisitionTime', 'AcquisitionUID',
    'ActualHumanPerformersSequence', 'AdditionalPatientHistory', 'AddressTrial',
    'AdmissionID', 'AdmittingDate', 'AdmittingDiagnosesCodeSequence',
    'AdmittingDiagnosesDescription', 'AdmittingTime', 'AffectedSOPInstanceUID',
    'Allergies', 'AnnotationGroupDescription', 'AnnotationGroupLabel',
    'AnnotationGroupUID', 'ApprovalStatusDateTime', 'Arbitrary',
    'AssertionDateTime', 'AssertionExpirationDateTime',
    'AttributeModificationDateTime', 'AuthorObserverSequence', 'BarcodeValue',
    'BeamDescription', 'BeamHoldTransitionDateTime', 'BolusDescription',
    'BranchOfService', 'CalibrationDate', 'CalibrationDateTime',
    'CalibrationTime', 'CameraOwnerName', 'CassetteID', 'CertificateOfSigner',
    'CertifiedTimestamp', 'ClinicalTrialCoordinatingCenterName',
    'ClinicalTrialProtocolEthicsCommitteeApprovalNumber',
    'ClinicalTrialProtocolEthicsCommitteeName', 'ClinicalTrialProtocolID',
    'ClinicalTrialProtocolName', 'ClinicalTrialSeriesDescription',
    'ClinicalTrialSeriesID', 'ClinicalTrialSiteID', 'ClinicalTrialSiteName',
    'ClinicalTrialSponsorName', 'ClinicalTrialSubjectID',
    'ClinicalTrialSubjectReadingID', 'ClinicalTrialTimePointDescription',
    'ClinicalTrialTimePointID', 'CommentsOnRadiationDose',
    'CommentsOnThePerformedProcedureStep', 'CompensatorDescription',
    'ConcatenationUID', 'ConceptualVolumeCombinationDescription',
    'ConceptualVolumeDescription', 'ConceptualVolumeUID',
    'ConfidentialityConstraintOnPatientDataDescription',
    'ConstituentConceptualVolumeUID',
    'ConsultingPhysicianIdentificationSequence', 'ConsultingPhysicianName',
    'ContainerComponentID', 'ContainerDescription', 'ContainerIdentifier',
    'ContentCreatorIdentificationCodeSequence', 'ContentCreatorName',
    'ContentDate', 'ContentSequence', 'ContentTime', 'ContextGroupLocalVersion',
    'ContextGroupVersion', 'ContrastBolusAgent', 'ContrastBolusStartTime',
    'ContrastBolusStopTime', 'ContributionDateTime', 'ContributionDescription',
    'CountryOfResidence', 'CreationDate', 'CreationTime',
    'CurrentObserverTrial', 'CurrentPatientLocation', 'CurveData', 'CurveDate',
    'CurveTime', 'CustodialOrganizationSequence', 'DataSetTrailingPadding',
    'Date', 'DateOfDocumentOrVerbalTransactionTrial', 'DateOfInstallation',
    'DateOfLastCalibration', 'DateOfLastDetectorCalibration',
    'DateOfManufacture', 'DateOfSecondaryCapture', 'DateTime',
    'DateTimeOfLastCalibration', 'DecayCorrectionDateTime',
    'DecompositionDescription', 'DerivationDescription', 'DestinationAE',
    'DetectorID', 'DeviceAlternateIdentifier', 'DeviceDescription',
    'DeviceLabel', 'DeviceSerialNumber', 'DeviceSettingDescription',
    'DeviceUID', 'DigitalSignatureDateTime', 'DigitalSignatureUID',
    'DigitalSignaturesSequence', 'DimensionOrganizationUID', 'DischargeDate',
    'DischargeDiagnosisDescription', 'DischargeTime',
    'DisplacementReferenceLabel', 'DistributionAddress', 'DistributionName',
    'DoseReferenceDescription', 'DoseReferenceUID', 'DosimetricObjectiveUID',
    'EffectiveDateTime', 'EncapsulatedDocument', 'EndAcquisitionDateTime',
    'EntityDescription', 'EntityLabel', 'EntityLongLabel', 'EntityName',
    'EquipmentFrameOfReferenceDescription',
    'EthicsCommitteeApprovalEffectivenessEndDate',
    'EthicsCommitteeApprovalEffectivenessStartDate', 'EthnicGroup',
    'ExclusionStartDateTime', 'ExpectedCompletionDateTime',
    'FailedSOPInstanceUIDList', 'FiducialUID',
    'FillerOrderNumberImagingServiceRequest', 'FilterLookupTableDescription',
    'FindingsGroupRecordingDateTrial', 'FindingsGroupRecordingTimeTrial',
    'FirstTreatmentDate', 'FixationDeviceDescription', 'FlowIdentifier',
    'FlowIdentifierSequence', 'FractionGroupDescription', 'FractionationNotes',
    'FrameAcquisitionDateTime', 'FrameComments', 'FrameOfReferenceUID',
    'FrameOriginTimestamp', 'FrameReferenceDateTime', 'FunctionalSyncPulse',
    'GPSAltitude', 'GPSAltitudeRef', 'GPSAreaInformation', 'GPSDOP',
    'GPSDateStamp', 'GPSDestBearing', 'GPSDestBearingRef', 'GPSDestDistance',
    'GPSDestDistanceRef', 'GPSDestLatitude', 'GPSDestLatitudeRef',
    'GPSDestLongitude', 'GPSDestLongitudeRef', 'GPSDifferential',
    'GPSImgDirection', 'GPSImgDirectionRef', 'GPSLatitude', 'GPSLatitudeRef',
    'GPSLongitude', 'GPSLongitudeRef', 'GPSMapDatum', 'GPSMeasureMode',
    'GPSProcessingMethod', 'GPSSatellites', 'GPSSpeed', 'GPSSpeedRef',
    'GPSStatus', 'GPSTimeStamp', 'GPSTrack', 'GPSTrackRef', 'GPSVersionID',
    'GantryID', 'GeneratorID', 'GraphicAnnotationSequence',
    'HL7DocumentEffectiveTime', 'HangingProtocolCreationDateTime',
    'HumanPerformerName', 'HumanPerformerOrganization', 'IconImageSequence',
    'IdentifyingComments', 'ImageComments', 'ImagePresentationComments',
    'ImagingServiceRequestComments', 'ImpedanceMeasurementDateTime',
    'Impressions', 'InformationIssueDateTime', 'InstanceCoercionDateTime',
    'InstanceCreationDate', 'InstanceCreationTime', 'InstanceCreatorUID',
    'InstanceOriginStatus', 'InstitutionAddress', 'InstitutionCodeSequence',
    'InstitutionName', 'InstitutionalDepartmentName',
    'InstitutionalDepartmentTypeCodeSequence', 'InstructionPerformedDateTime',
    'InsurancePlanIdentification', 'IntendedFractionStartTime',
    'IntendedPhaseEndDate', 'IntendedPhaseStartDate',
    'IntendedRecipientsOfResultsIdentificationSequence', 'InterlockDateTime',
    'InterlockDescription', 'InterlockOriginDescription',
    'InterpretationApprovalDate', 'InterpretationApprovalTime',
    'InterpretationApproverSequence', 'InterpretationAuthor',
    'InterpretationDiagnosisDescription', 'InterpretationID',
    'InterpretationIDIssuer', 'InterpretationRecordedDate',
    'InterpretationRecordedTime', 'InterpretationRecorder',
    'InterpretationText', 'InterpretationTranscriber',
    'InterpretationTranscriptionDate', 'InterpretationTranscriptionTime',
    'InterventionDrugStartTime', 'InterventionDrugStopTime',
    'IrradiationEventUID', 'IssueDateOfImagingServiceRequest',
    'IssueTimeOfImagingServiceRequest', 'IssuerOfAdmissionID',
    'IssuerOfAdmissionIDSequence', 'IssuerOfClinicalTrialProtocolID',
    'IssuerOfClinicalTrialSeriesID', 'IssuerOfClinicalTrialSiteID',
    'IssuerOfClinicalTrialSubjectID', 'IssuerOfClinicalTrialSubjectReadingID',
    'IssuerOfClinicalTrialTimePointID', 'IssuerOfPatientID',
    'IssuerOfServiceEpisodeID', 'IssuerOfServiceEpisodeIDSequence',
    'IssuerOfTheContainerIdentifierSequence',
    'IssuerOfTheSpecimenIdentifierSequence', 'LabelText',
    'LargePaletteColorLookupTableUID', 'LastMenstrualDate', 'LensMake',
    'LensModel', 'LensSerialNumber', 'LensSpecification',
    'LongDeviceDescription', 'MAC', 'MakerNote', 'ManufacturerDeviceClassUID',
    'ManufacturerDeviceIdentifier', 'MediaStorageSOPInstanceUID',
    'MedicalAlerts', 'MedicalRecordLocator', 'MilitaryRank',
    'ModifiedAttributesSequence', 'ModifiedImageDate',
    'ModifiedImageDescription', 'ModifiedImageTime', 'ModifyingDeviceID',
    'ModifyingSystem', 'MostRecentTreatmentDate',
    'MultienergyAcquisitionDescription', 'MultiplexGroupUID',
    'NameOfPhysiciansReadingStudy', 'NamesOfIntendedRecipientsOfResults',
    'NetworkID', 'NonconformingDataElementValue',
    'NonconformingModifiedAttributesSequence', 'ObservationDateTime',
    'ObservationDateTrial', 'ObservationStartDateTime',
    'ObservationSubjectUIDTrial', 'ObservationTimeTrial', 'ObservationUID',
    'Occupation', 'OperatorIdentificationSequence', 'OperatorsName',
    'OrderCallbackPhoneNumber', 'OrderCallbackTelecomInformation',
    'OrderEnteredBy', 'OrderEntererLocation', 'OriginalAttributesSequence',
    'Originator', 'OtherClinicalTrialProtocolIDsSequence', 'OtherPatientIDs',
    'OtherPatientIDsSequence', 'OtherPatientNames', 'OverlayComments',
    'OverlayData', 'OverlayDate', 'OverlayTime', 'OverrideDateTime',
    'PaletteColorLookupTableUID', 'ParticipantSequence',
    'ParticipationDateTime', 'PatientAddress', 'PatientAge', 'PatientBirthDate',
    'PatientBirthName', 'PatientBirthTime', 'PatientComments', 'PatientID',
    'PatientInstitutionResidence', 'PatientInsurancePlanCodeSequence',
    'PatientMotherBirthName', 'PatientName',
    'PatientPrimaryLanguageCodeSequence',
    'PatientPrimaryLanguageModifierCodeSequence', 'PatientReligiousPreference',
    'PatientSetupPhotoDescription', 'PatientSetupUID', 'PatientSex',
    'PatientSexNeutered', 'PatientSize', 'PatientState',
    'PatientTelecomInformation', 'PatientTelephoneNumbers',
    'PatientTransportArrangements',
    'PatientTreatmentPreparationMethodDescription',
    'PatientTreatmentPreparationProcedureParameterDescription', 'PatientWeight',
    'PerformedLocation', 'PerformedProcedureStepDescription',
    'PerformedProcedureStepEndDate', 'PerformedProcedureStepEndDateTime',
    'PerformedProcedureStepEndTime', 'PerformedProcedureStepID',
    'PerformedProcedureStepStartDate', 'PerformedProcedureStepStartDateTime',
    'PerformedProcedureStepStartTime', 'PerformedStationAETitle',
    'PerformedStationGeographicLocationCodeSequence', 'PerformedStationName',
    'PerformedStationNameCodeSequence',
    'PerformingPhysicianIdentificationSequence', 'PerformingPhysicianName',
    'PersonAddress', 'PersonIdentificationCodeSequence', 'PersonName',
    'PersonTelecomInformation', 'PersonTelephoneNumbers',
    'PhysicianApprovingInterpretation', 'PhysiciansOfRecord',
    'PhysiciansOfRecordIdentificationSequence',
    'PhysiciansReadingStudyIdentificationSequence',
    'PlacerOrderNumberImagingServiceRequest', 'PlateID',
    'PositionAcquisitionTemplateDescription', 'PositionAcquisitionTemplateName',
    'PreMedication', 'PregnancyStatus', 'PrescriptionDescription',
    'PrescriptionNotes', 'PrescriptionNotesSequence',
    'PresentationCreationDate', 'PresentationCreationTime',
    'PresentationDisplayCollectionUID', 'PresentationSequenceCollectionUID',
    'PriorTreatmentDoseDescription', 'ProcedureStepCancellationDateTime',
    'ProductExpirationDateTime', 'ProtocolName', 'PyramidDescription',
    'PyramidLabel', 'PyramidUID', 'ROICreatorSequence', 'ROIDateTime',
    'ROIDescription', 'ROIGenerationDescription', 'ROIInterpreter',
    'ROIInterpreterSequence', 'ROIName', 'ROIObservationDateTime',
    'ROIObservationDescription', 'ROIObservationLabel',
    'RTAccessoryDeviceSlotID', 'RTAccessoryHolderSlotID',
    'RTPhysicianIntentNarrative', 'RTPlanDate', 'RTPlanDescription',
    'RTPlanLabel', 'RTPlanName', 'RTPlanTime', 'RTPrescriptionLabel',
    'RTToleranceSetLabel', 'RTTreatmentApproachLabel', 'RTTreatmentPhaseUID',
    'RadiationDoseIdentificationLabel', 'RadiationDoseInVivoMeasurementLabel',
    'RadiationGenerationModeDescription', 'RadiationGenerationModeLabel',
    'RadiopharmaceuticalStartDateTime', 'RadiopharmaceuticalStartTime',
    'RadiopharmaceuticalStopDateTime', 'RadiopharmaceuticalStopTime',
    'ReasonForOmissionDescription', 'ReasonForRequestedProcedureCodeSequence',
    'ReasonForStudy', 'ReasonForSuperseding',
    'ReasonForTheAttributeModification', 'ReasonForTheImagingServiceRequest',
    'ReasonForTheRequestedProcedure', 'ReasonForVisit',
    'ReasonForVisitCodeSequence', 'ReceivingAE',
    'RecordedRTControlPointDateTime', 'ReferencedConceptualVolumeUID',
    'ReferencedDateTime', 'ReferencedDigitalSignatureSequence',
    'ReferencedDoseReferenceUID', 'ReferencedDosimetricObjectiveUID',
    'ReferencedFiducialsUID', 'ReferencedFrameOfReferenceUID',
    'ReferencedGeneralPurposeScheduledProcedureStepTransactionUID',
    'ReferencedImageSequence', 'ReferencedObservationUIDTrial',
    'ReferencedPatientAliasSequence', 'ReferencedPatientPhotoSequence',
    'ReferencedPatientSequence', 'ReferencedPerformedProcedureStepSequence',
    'ReferencedSOPInstanceMACSequence', 'ReferencedSOPInstanceUID',
    'ReferencedSOPInstanceUIDInFile', 'ReferencedStudySequence',
    'ReferencedTreatmentPositionGroupUID', 'ReferringPhysicianAddress',
    'ReferringPhysicianIdentificationSequence', 'ReferringPhysicianName',
    'ReferringPhysicianTelephoneNumbers', 'RegionOfResidence',
    'RelatedFrameOfReferenceUID', 'RequestAttributesSequence',
    'RequestedContrastAgent', 'RequestedProcedureComments',
    'RequestedProcedureDescription', 'RequestedProcedureID',
    'RequestedProcedureLocation', 'RequestedSOPInstanceUID',
    'RequestedSeriesDescription', 'RequestingAE', 'RequestingPhysician',
    'RequestingService', 'RespiratoryMotionCompensationTechniqueDescription',
    'ResponsibleOrganization', 'ResponsiblePerson', 'ResultsComments',
    'ResultsDistributionListSequence', 'ResultsID', 'ResultsIDIssuer',
    'RetrieveAETitle', 'ReviewDate', 'ReviewTime', 'ReviewerName',
    'SOPAuthorizationDateTime', 'SOPInstanceUID', 'SafePositionExitDate',
    'SafePositionExitTime', 'SafePositionReturnDate', 'SafePositionReturnTime',
    'ScheduledAdmissionDate', 'ScheduledAdmissionTime',
    'ScheduledDischargeDate', 'ScheduledDischargeTime',
    'ScheduledHumanPerformersSequence', 'ScheduledPatientInstitutionResidence',
    'ScheduledPerformingPhysicianIdentificationSequence',
    'ScheduledPerformingPhysicianName', 'ScheduledProcedureStepDescription',
    'ScheduledProcedureStepEndDate', 'ScheduledProcedureStepEndTime',
    'ScheduledProcedureStepExpirationDateTime', 'ScheduledProcedureStepID',
    'ScheduledProcedureStepLocation',
    'ScheduledProcedureStepModificationDateTime',
    'ScheduledProcedureStepStartDate', 'ScheduledProcedureStepStartDateTime',
    'ScheduledProcedureStepStartTime', 'ScheduledStationAETitle',
    'ScheduledStationGeographicLocationCodeSequence', 'ScheduledStationName',
    'ScheduledStationNameCodeSequence', 'ScheduledStudyLocation',
    'ScheduledStudyLocationAETitle', 'ScheduledStudyStartDate',
    'ScheduledStudyStartTime', 'ScheduledStudyStopDate',
    'ScheduledStudyStopTime', 'SelectorAEValue', 'SelectorASValue',
    'SelectorDAValue', 'SelectorDTValue', 'SelectorLOValue', 'SelectorLTValue',
    'SelectorOBValue', 'SelectorPNValue', 'SelectorSHValue', 'SelectorSTValue',
    'SelectorTMValue', 'SelectorUNValue', 'SelectorURValue', 'SelectorUTValue',
    'SeriesDate', 'SeriesDescription', 'SeriesInstanceUID', 'SeriesTime',
    'ServiceEpisodeDescription', 'ServiceEpisodeID',
    'SetupTechniqueDescription', 'ShieldingDeviceDescription',
    'SlideIdentifier', 'SmokingStatus', 'SourceConceptualVolumeUID',
    'SourceEndDateTime', 'SourceFrameOfReferenceUID', 'SourceIdentifier',
    'SourceImageSequence', 'SourceManufacturer', 'SourceOfPreviousValues',
    'SourceSerialNumber', 'SourceStartDateTime', 'SourceStrengthReferenceDate',
    'SourceStrengthReferenceTime', 'SpecialNeeds', 'SpecimenAccessionNumber',
    'SpecimenDetailedDescription', 'SpecimenIdentifier',
    'SpecimenPreparationSequence', 'SpecimenShortDescription', 'SpecimenUID',
    'StartAcquisitionDateTime', 'StationAETitle', 'StationName',
    'StorageMediaFileSetUID', 'StructureSetDate', 'StructureSetDescription',
    'StructureSetLabel', 'StructureSetName', 'StructureSetTime',
    'StudyArrivalDate', 'StudyArrivalTime', 'StudyComments',
    'StudyCompletionDate', 'StudyCompletionTime', 'StudyDate',
    'StudyDescription', 'StudyID', 'StudyIDIssuer', 'StudyInstanceUID',
    'StudyReadDate', 'StudyReadTime', 'StudyTime', 'StudyVerifiedDate',
    'StudyVerifiedTime', 'SubstanceAdministrationDateTime',
    'SynchronizationFrameOfReferenceUID', 'TargetUID', 'TelephoneNumberTrial',
    'TemplateExtensionCreatorUID', 'TemplateExtensionOrganizationUID',
    'TemplateLocalVersion', 'TemplateVersion', 'TextComments', 'TextString',
    'Time', 'TimeOfDocumentCreationOrVerbalTransactionTrial',
    'TimeOfLastCalibration', 'TimeOfLastDetectorCalibration',
    'TimeOfSecondaryCapture', 'TimezoneOffsetFromUTC', 'TopicAuthor',
    'TopicKeywords', 'TopicSubject', 'TopicTitle', 'TrackingUID',
    'TransactionUID', 'TransducerIdentificationSequence',
    'TreatmentControlPointDate', 'TreatmentControlPointTime', 'TreatmentDate',
    'TreatmentMachineName', 'TreatmentPositionGroupLabel',
    'TreatmentPositionGroupUID', 'TreatmentSessionUID', 'TreatmentSite',
    'TreatmentSites', 'TreatmentTechniqueNotes', 'TreatmentTime',
    'TreatmentToleranceViolationDateTime',
    'TreatmentToleranceViolationDescription', 'UDISequence', 'UID',
    'UniqueDeviceIdentifier', 'UserContentLabel', 'UserContentLongLabel',
    'VerbalSourceIdentifierCodeSequenceTrial', 'VerbalSourceTrial',
    'VerificationDateTime', 'VerifyingObserverIdentificationCodeSequence',
    'VerifyingObserverName', 'VerifyingObserverSequence',
    'VerifyingOrganization', 'VisitComments', 'WaveformFilterDescription',
    'XRayDetectorID', 'XRayDetectorLabel', 'XRaySourceID',
))

_IDENTIFYING_VRS = frozenset(('PN', 'DA', 'DT', 'TM', 'UI', 'AS', 'AE'))
_TEXT_VRS = frozenset(('LO', 'SH', 'LT', 'ST', 'UT', 'UC', 'UR'))
_BINARY_VRS = frozenset(('OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN'))
_INT_VRS = frozenset(('IS', 'US', 'SS', 'UL', 'SL', 'UV', 'SV'))
_FLOAT_VRS = frozenset(('DS', 'FL', 'FD'))
_CODE_VRS = frozenset(('CS',))
_EXPORTABLE_VRS = _TEXT_VRS | _CODE_VRS | _INT_VRS | _FLOAT_VRS
# Value representations stored as characters, parsed from text when pydicom
# cannot convert them.
_STRING_VRS = _TEXT_VRS | _CODE_VRS | frozenset(('IS', 'DS'))
_NON_DATA_SET_GROUPS = (0x0000, 0x0002)
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1

_INT_RE = re.compile(r'[+-]?[0-9]+', re.ASCII)
_DECIMAL_RE = re.compile(
    r'[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?', re.ASCII)
# Words of a CamelCase keyword; a run of capitals is one word.
_WORD_RE = re.compile(r'[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+')
# A run of capitals made of these alone is split into them:
# 'VOILUTFunction' -> voi_lut_function.
_ACRONYMS = ('VOI', 'LUT', 'UID', 'SOP', 'ID')


def feature_name(keyword: str) -> str:
  """The feature of a keyword: 'VOILUTFunction' -> 'dicom/voi_lut_function'."""
  words = []
  for word in _WORD_RE.findall(keyword):
    words.extend(_split_acronyms(word) or [word])
  return FEATURE_PREFIX + '_'.join(word.lower() for word in words)


def _split_acronyms(run: str) -> Optional[List[str]]:
  """['VOI', 'LUT'] for 'VOILUT'; None unless `_ACRONYMS` make up `run`."""
  if not run:
    return []
  for acronym in _ACRONYMS:
    if run.startswith(acronym):
      rest = _split_acronyms(run[len(acronym):])
      if rest is not None:
        return [acronym] + rest
  return None


@functools.lru_cache(maxsize=None)
def refusal(keyword: str) -> Optional[str]:
  """Why `keyword` may not be exported (module docstring), None if it may."""
  tag = datadict.tag_for_keyword(keyword)
  if tag is None:
    return (f'{keyword!r} is not a DICOM keyword of the standard data '
            'dictionary (private attributes cannot be exported).')
  if tag >> 16 in _NON_DATA_SET_GROUPS:
    return f'{keyword} is a command or file meta attribute, not a data set one.'
  if keyword in PHI_KEYWORDS:
    return (f'{keyword} is in DICOM PS3.15 Annex E Table E.1-1 (Basic '
            'Application Level Confidentiality Profile): it may identify the '
            'patient and is never exported.')
  vrs = _value_representations(tag)
  for vr in vrs:
    if vr in _IDENTIFYING_VRS:
      return (f'{keyword} has VR {vr}: names, dates, times, UIDs, ages and AE '
              'titles may identify a patient (DICOM PS3.15 Annex E) and are '
              'never exported.')
    if vr in _TEXT_VRS and keyword not in SAFE_TEXT_KEYWORDS:
      return (f'{keyword} has VR {vr}: free text may hold identifying '
              'information (DICOM PS3.15 Annex E) and is exported only for '
              f'the technical attributes {sorted(SAFE_TEXT_KEYWORDS)}.')
    if vr == 'SQ':
      return f'{keyword} is a sequence (VR SQ); only single attributes export.'
    if vr in _BINARY_VRS:
      return f'{keyword} has binary VR {vr} (pixel data or other bytes).'
    if vr not in _EXPORTABLE_VRS:
      return f'{keyword} has VR {vr}, which is not a code or a number.'
  return None


def _value_representations(tag: int) -> Tuple[str, ...]:
  """('US', 'SS') for a dictionary VR 'US or SS'."""
  return tuple(datadict.dictionary_VR(tag).split(' or '))


def _check(keyword: str) -> None:
  """Raises ValueError unless `keyword` may be exported."""
  if not isinstance(keyword, str):
    raise ValueError(f'DICOM keywords are strings, got {keyword!r}.')
  reason = refusal(keyword)
  if reason is not None:
    raise ValueError(f'DICOM attribute refused: {reason}')


def resolve_attributes(extra: Sequence[str] = ()) -> Tuple[str, ...]:
  """DEFAULT_ATTRIBUTES then `extra` (duplicates dropped), all checked.

  Raises:
    ValueError: naming the first keyword the module's rule refuses and why.
  """
  if isinstance(extra, str):
    raise ValueError(f'extra must be a sequence of keywords, got {extra!r}.')
  keywords = tuple(dict.fromkeys((*DEFAULT_ATTRIBUTES, *extra)))
  for keyword in keywords:
    _check(keyword)
  return keywords


def extract(ds: Dataset, keywords: Sequence[str]) -> Dict[str, FeatureValues]:
  """Feature name -> values of the `keywords` present in `ds`.

  Integers for IS, US, SS, UL, SL, UV, SV; floats for DS, FL, FD; UTF-8
  bytes, stripped, for code strings and safe text. A multi-valued attribute
  gives all its values in order. Values that do not parse (a DS of 'abc'),
  non-finite numbers, integers beyond int64 and empty strings are skipped,
  and an attribute that is absent, empty or left without values is omitted:
  a feature is either missing or holds at least one value. Attributes inside
  sequences (e.g. per-frame functional groups) are not looked at.

  Raises:
    ValueError: only for a keyword the module's rule refuses (a programming
      error: pass the result of `resolve_attributes`); never for values.
  """
  features = {}
  for keyword in keywords:
    _check(keyword)
    values = _attribute_values(ds, keyword)
    if values:
      features[feature_name(keyword)] = values
  return features


def _attribute_values(ds: Dataset, keyword: str) -> FeatureValues:
  """The parsed values of one attribute of `ds`, [] if none."""
  tag = datadict.tag_for_keyword(keyword)
  vrs = _value_representations(tag)
  items = _raw_items(ds, tag, vrs)
  if all(vr in _INT_VRS for vr in vrs):
    parse = _to_int
  elif all(vr in _FLOAT_VRS for vr in vrs):
    parse = _to_float
  else:
    parse = _to_text
  parsed = (parse(item) for item in items)
  return [value for value in parsed if value is not None]


def _raw_items(ds: Dataset, tag: int, vrs: Tuple[str, ...]) -> list:
  """The items of the attribute's value, converted by pydicom when it can.

  When pydicom cannot convert a value (an invalid IS or DS), the items of a
  character VR are read from the raw bytes instead.
  """
  value = _value(ds, tag)
  if isinstance(value, (bytes, bytearray)):
    if not all(vr in _STRING_VRS for vr in vrs):
      return []
    return bytes(value).decode('latin-1').split('\\')
  if value is None:
    return []
  if isinstance(value, (multival.MultiValue, list, tuple)):
    return list(value)
  return [value]


def _value(ds: Dataset, tag: int):
  """The converted value, else the raw bytes, else None."""
  if tag not in ds:
    return None
  try:
    return ds[tag].value
  except Exception:  # pylint: disable=broad-except
    pass  # pydicom could not convert the raw value: read its bytes.
  try:
    return ds.get_item(tag).value
  except Exception:  # pylint: disable=broad-except
    return None


def _to_int(item) -> Optional[int]:
  """An int64 from a number or a decimal string; None if there is none."""
  if isinstance(item, str):
    text = item.strip(' \x00')
    if _INT_RE.fullmatch(text):
      item = int(text)
    else:
      item = _to_float(text)
  if isinstance(item, bool) or not isinstance(item, numbers.Real):
    return None
  if not isinstance(item, numbers.Integral):
    if not (math.isfinite(item) and float(item).is_integer()):
      return None
  item = int(item)
  return item if _INT64_MIN <= item <= _INT64_MAX else None


def _to_float(item) -> Optional[float]:
  """A finite float from a number or a decimal string; None if there is none."""
  if isinstance(item, decimal.Decimal):
    item = float(item)
  if isinstance(item, str):
    text = item.strip(' \x00')
    item = float(text) if _DECIMAL_RE.fullmatch(text) else None
  if isinstance(item, bool) or not isinstance(item, numbers.Real):
    return None
  return float(item) if math.isfinite(item) else None


def _to_text(item) -> Optional[bytes]:
  """Stripped UTF-8 bytes of a string; None if empty or not a string."""
  if not isinstance(item, str):
    return None
  text = item.strip(' \x00')
  return text.encode('utf-8') if text else None


def transfer_syntax_uid(ds: Dataset) -> Optional[bytes]:
  """The file's transfer syntax UID, if it is one the standard defines.

  Only a public transfer syntax UID is returned, so that a malformed file
  meta cannot carry another UID into TRANSFER_SYNTAX_FEATURE.
  """
  file_meta = getattr(ds, 'file_meta', None)
  value = file_meta.get('TransferSyntaxUID') if file_meta is not None else None
  if value is None:
    return None
  syntax = uid_lib.UID(str(value).strip(' \x00'))
  if syntax.is_private or not syntax.is_transfer_syntax:
    return None
  return str(syntax).encode('ascii')
