-- The local store's schema at version 5 (the release before addenda, commit 233db3a), as
-- SQLite recorded it in sqlite_master, in creation order, without the full-text index's
-- own shadow tables (creating patient_fts makes them). Frozen on purpose: tests build
-- version-5 stores from it, so it must never follow later changes.

CREATE TABLE patient (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	mrn VARCHAR(32) NOT NULL,
	given_name VARCHAR(100) NOT NULL,
	family_name VARCHAR(100) NOT NULL,
	date_of_birth DATE,
	sex VARCHAR(10) DEFAULT 'unknown' NOT NULL,
	phone VARCHAR(20),
	email VARCHAR(320),
	preferred_language VARCHAR(10) DEFAULT 'es' NOT NULL,
	preferred_channels JSON NOT NULL,
	address VARCHAR(300),
	needs_review BOOLEAN DEFAULT 'false' NOT NULL,
	search_text TEXT DEFAULT '' NOT NULL,
	server_version BIGINT DEFAULT '0' NOT NULL,
	version_xid BIGINT,
	updated_hlc VARCHAR(40),
	field_stamps JSON,
	updated_by_device CHAR(32),
	deleted_at DATETIME,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	timezone VARCHAR(64),
	CONSTRAINT pk_patient PRIMARY KEY (clinic_id, id),
	CONSTRAINT uq_patient_clinic_id_mrn UNIQUE (clinic_id, mrn),
	CONSTRAINT fk_patient_clinic_id_clinic FOREIGN KEY(clinic_id) REFERENCES clinic (id) ON DELETE RESTRICT,
	CONSTRAINT ck_patient_sex CHECK (sex IN ('female', 'male', 'other', 'unknown'))
);

CREATE INDEX ix_patient_clinic_id_family_name ON patient (clinic_id, family_name, given_name, id);

CREATE INDEX ix_patient_clinic_id_version_xid ON patient (clinic_id, version_xid, server_version);

CREATE TABLE provider (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	display_name VARCHAR(200) NOT NULL,
	specialty VARCHAR(100),
	user_id CHAR(32),
	color VARCHAR(7),
	is_active BOOLEAN DEFAULT 'true' NOT NULL,
	server_version BIGINT DEFAULT '0' NOT NULL,
	version_xid BIGINT,
	updated_hlc VARCHAR(40),
	field_stamps JSON,
	updated_by_device CHAR(32),
	deleted_at DATETIME,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	CONSTRAINT pk_provider PRIMARY KEY (clinic_id, id),
	CONSTRAINT fk_provider_clinic_id_user_id_staff_user FOREIGN KEY(clinic_id, user_id) REFERENCES staff_user (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT fk_provider_clinic_id_clinic FOREIGN KEY(clinic_id) REFERENCES clinic (id) ON DELETE RESTRICT
);

CREATE INDEX ix_provider_clinic_id_version_xid ON provider (clinic_id, version_xid, server_version);

CREATE TABLE availability_rule (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	provider_id CHAR(32) NOT NULL,
	weekday SMALLINT NOT NULL,
	start_time TIME NOT NULL,
	end_time TIME NOT NULL,
	slot_minutes SMALLINT NOT NULL,
	buffer_minutes SMALLINT DEFAULT '0' NOT NULL,
	break_start TIME,
	break_end TIME,
	valid_from DATE,
	valid_until DATE,
	server_version BIGINT DEFAULT '0' NOT NULL,
	version_xid BIGINT,
	updated_hlc VARCHAR(40),
	field_stamps JSON,
	updated_by_device CHAR(32),
	deleted_at DATETIME,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	CONSTRAINT pk_availability_rule PRIMARY KEY (clinic_id, id),
	CONSTRAINT fk_availability_rule_clinic_id_provider_id_provider FOREIGN KEY(clinic_id, provider_id) REFERENCES provider (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT ck_availability_rule_weekday CHECK (weekday BETWEEN 0 AND 6),
	CONSTRAINT ck_availability_rule_hours CHECK (start_time < end_time),
	CONSTRAINT ck_availability_rule_slot_minutes CHECK (slot_minutes BETWEEN 5 AND 480),
	CONSTRAINT ck_availability_rule_buffer_minutes CHECK (buffer_minutes BETWEEN 0 AND 240),
	CONSTRAINT ck_availability_rule_break CHECK ((break_start IS NULL) = (break_end IS NULL) AND (break_start IS NULL OR (start_time <= break_start AND break_start < break_end AND break_end <= end_time)))
);

CREATE INDEX ix_availability_rule_clinic_id_version_xid ON availability_rule (clinic_id, version_xid, server_version);

CREATE TABLE availability_exception (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	provider_id CHAR(32),
	kind VARCHAR(20) NOT NULL,
	slot_minutes SMALLINT,
	starts_at DATETIME NOT NULL,
	ends_at DATETIME NOT NULL,
	reason VARCHAR(200),
	server_version BIGINT DEFAULT '0' NOT NULL,
	version_xid BIGINT,
	updated_hlc VARCHAR(40),
	field_stamps JSON,
	updated_by_device CHAR(32),
	deleted_at DATETIME,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	CONSTRAINT pk_availability_exception PRIMARY KEY (clinic_id, id),
	CONSTRAINT fk_availability_exception_clinic_id_provider_id_provider FOREIGN KEY(clinic_id, provider_id) REFERENCES provider (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT ck_availability_exception_kind CHECK (kind IN ('time_off', 'extra_hours')),
	CONSTRAINT ck_availability_exception_extra_hours CHECK (kind = 'time_off' OR (provider_id IS NOT NULL AND slot_minutes BETWEEN 5 AND 480)),
	CONSTRAINT ck_availability_exception_period CHECK (starts_at < ends_at)
);

CREATE INDEX ix_availability_exception_clinic_id_version_xid ON availability_exception (clinic_id, version_xid, server_version);

CREATE TABLE appointment (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	patient_id CHAR(32) NOT NULL,
	provider_id CHAR(32) NOT NULL,
	starts_at DATETIME NOT NULL,
	ends_at DATETIME NOT NULL,
	status VARCHAR(20) NOT NULL,
	reason VARCHAR(500),
	cancel_reason VARCHAR(500),
	source VARCHAR(20) DEFAULT 'desk' NOT NULL,
	created_by CHAR(32),
	server_version BIGINT DEFAULT '0' NOT NULL,
	version_xid BIGINT,
	updated_hlc VARCHAR(40),
	field_stamps JSON,
	updated_by_device CHAR(32),
	deleted_at DATETIME,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	confirmed_at DATETIME,
	CONSTRAINT pk_appointment PRIMARY KEY (clinic_id, id),
	CONSTRAINT fk_appointment_clinic_id_patient_id_patient FOREIGN KEY(clinic_id, patient_id) REFERENCES patient (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT fk_appointment_clinic_id_provider_id_provider FOREIGN KEY(clinic_id, provider_id) REFERENCES provider (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT ck_appointment_period CHECK (starts_at < ends_at),
	CONSTRAINT ck_appointment_status CHECK (status IN ('pending', 'booked', 'checked_in', 'in_progress', 'completed', 'cancelled', 'no_show', 'rejected'))
);

CREATE INDEX ix_appointment_patient ON appointment (clinic_id, patient_id);

CREATE INDEX ix_appointment_provider_starts ON appointment (clinic_id, provider_id, starts_at);

CREATE INDEX ix_appointment_active_provider ON appointment (clinic_id, provider_id, starts_at) WHERE status IN ('pending', 'booked', 'checked_in', 'in_progress') AND deleted_at IS NULL;

CREATE INDEX ix_appointment_clinic_id_version_xid ON appointment (clinic_id, version_xid, server_version);

CREATE TABLE clinical_note (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	patient_id CHAR(32) NOT NULL,
	author_id CHAR(32) NOT NULL,
	appointment_id CHAR(32),
	status VARCHAR(10) DEFAULT 'draft' NOT NULL,
	body TEXT DEFAULT '' NOT NULL,
	conflict_of CHAR(32),
	signed_at DATETIME,
	server_version BIGINT DEFAULT '0' NOT NULL,
	version_xid BIGINT,
	updated_hlc VARCHAR(40),
	field_stamps JSON,
	updated_by_device CHAR(32),
	deleted_at DATETIME,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	CONSTRAINT pk_clinical_note PRIMARY KEY (clinic_id, id),
	CONSTRAINT fk_clinical_note_clinic_id_patient_id_patient FOREIGN KEY(clinic_id, patient_id) REFERENCES patient (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT fk_clinical_note_clinic_id_author_id_staff_user FOREIGN KEY(clinic_id, author_id) REFERENCES staff_user (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT fk_clinical_note_clinic_id_appointment_id_appointment FOREIGN KEY(clinic_id, appointment_id) REFERENCES appointment (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT fk_clinical_note_clinic_id_conflict_of_clinical_note FOREIGN KEY(clinic_id, conflict_of) REFERENCES clinical_note (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT ck_clinical_note_status CHECK (status IN ('draft', 'signed')),
	CONSTRAINT ck_clinical_note_signed CHECK ((status = 'signed') = (signed_at IS NOT NULL))
);

CREATE INDEX ix_clinical_note_patient ON clinical_note (clinic_id, patient_id);

CREATE INDEX ix_clinical_note_clinic_id_version_xid ON clinical_note (clinic_id, version_xid, server_version);

CREATE TABLE payment (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	appointment_id CHAR(32) NOT NULL,
	patient_id CHAR(32) NOT NULL,
	amount_minor BIGINT NOT NULL,
	currency VARCHAR(3) NOT NULL,
	method VARCHAR(10) NOT NULL,
	reference VARCHAR(100),
	received_by CHAR(32) NOT NULL,
	received_at DATETIME NOT NULL,
	receipt_number VARCHAR(40) NOT NULL,
	voided_at DATETIME,
	voided_by CHAR(32),
	void_reason VARCHAR(500),
	server_version BIGINT DEFAULT '0' NOT NULL,
	version_xid BIGINT,
	updated_hlc VARCHAR(40),
	field_stamps JSON,
	updated_by_device CHAR(32),
	deleted_at DATETIME,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	CONSTRAINT pk_payment PRIMARY KEY (clinic_id, id),
	CONSTRAINT uq_payment_clinic_id_receipt_number UNIQUE (clinic_id, receipt_number),
	CONSTRAINT fk_payment_clinic_id_appointment_id_appointment FOREIGN KEY(clinic_id, appointment_id) REFERENCES appointment (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT fk_payment_clinic_id_patient_id_patient FOREIGN KEY(clinic_id, patient_id) REFERENCES patient (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT fk_payment_clinic_id_received_by_staff_user FOREIGN KEY(clinic_id, received_by) REFERENCES staff_user (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT fk_payment_clinic_id_voided_by_staff_user FOREIGN KEY(clinic_id, voided_by) REFERENCES staff_user (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT ck_payment_amount_positive CHECK (amount_minor > 0),
	CONSTRAINT ck_payment_currency CHECK (length(currency) = 3 AND upper(currency) = currency),
	CONSTRAINT ck_payment_method CHECK (method IN ('cash', 'card', 'transfer')),
	CONSTRAINT ck_payment_void CHECK ((voided_at IS NULL) = (void_reason IS NULL) AND (voided_at IS NULL) = (voided_by IS NULL))
);

CREATE INDEX ix_payment_received_at ON payment (clinic_id, received_at);

CREATE INDEX ix_payment_patient ON payment (clinic_id, patient_id);

CREATE INDEX ix_payment_clinic_id_version_xid ON payment (clinic_id, version_xid, server_version);

CREATE INDEX ix_payment_appointment ON payment (clinic_id, appointment_id);

CREATE TABLE outbox (
	seq INTEGER NOT NULL,
	mutation_id CHAR(32) NOT NULL,
	entity VARCHAR(40) NOT NULL,
	op VARCHAR(20) NOT NULL,
	record_id CHAR(32) NOT NULL,
	base_version BIGINT,
	changes JSON NOT NULL,
	base JSON NOT NULL,
	hlc VARCHAR(64) NOT NULL,
	created_at DATETIME NOT NULL,
	attempts INTEGER DEFAULT 0 NOT NULL,
	last_error TEXT,
	PRIMARY KEY (seq),
	UNIQUE (mutation_id)
);

CREATE TABLE sync_state (
	"key" VARCHAR(40) NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY ("key")
);

CREATE TABLE attention (
	mutation_id CHAR(32) NOT NULL,
	entity VARCHAR(40) NOT NULL,
	record_id CHAR(32) NOT NULL,
	status VARCHAR(20) NOT NULL,
	code VARCHAR(64),
	reason TEXT,
	detail JSON NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (mutation_id)
);

CREATE TABLE login_cache (
	email VARCHAR(320) NOT NULL,
	user_id CHAR(32) NOT NULL,
	clinic_id CHAR(32) NOT NULL,
	role VARCHAR(20) NOT NULL,
	verifier VARCHAR(200) NOT NULL,
	verified_online_at DATETIME NOT NULL,
	PRIMARY KEY (email)
);

CREATE UNIQUE INDEX ix_local_patient_id ON patient (id);

CREATE UNIQUE INDEX ix_local_provider_id ON provider (id);

CREATE UNIQUE INDEX ix_local_availability_rule_id ON availability_rule (id);

CREATE UNIQUE INDEX ix_local_availability_exception_id ON availability_exception (id);

CREATE UNIQUE INDEX ix_local_appointment_id ON appointment (id);

CREATE UNIQUE INDEX ix_local_clinical_note_id ON clinical_note (id);

CREATE UNIQUE INDEX ix_local_payment_id ON payment (id);

CREATE VIRTUAL TABLE patient_fts USING fts5(doc, tokenize='unicode61');

CREATE TRIGGER patient_fts_insert AFTER INSERT ON patient BEGIN INSERT INTO patient_fts(rowid, doc) VALUES (new.rowid, consulta_search_document(new.given_name, new.family_name, new.phone, new.mrn)); END;

CREATE TRIGGER patient_fts_update AFTER UPDATE OF given_name, family_name, phone, mrn ON patient BEGIN DELETE FROM patient_fts WHERE rowid = old.rowid; INSERT INTO patient_fts(rowid, doc) VALUES (new.rowid, consulta_search_document(new.given_name, new.family_name, new.phone, new.mrn)); END;

CREATE TRIGGER patient_fts_delete AFTER DELETE ON patient BEGIN DELETE FROM patient_fts WHERE rowid = old.rowid; END;
