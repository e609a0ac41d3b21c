-- The local store's schema at version 1: every store created before versioning (up to
-- commit fff5890), as SQLite recorded it in sqlite_master, in creation order. Frozen on
-- purpose: tests build version-1 stores from it, so it must never follow later changes.

CREATE TABLE clinic (
	id CHAR(32) NOT NULL,
	slug VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	timezone VARCHAR(64) NOT NULL,
	default_locale VARCHAR(10) DEFAULT 'es' NOT NULL,
	country VARCHAR(2) DEFAULT 'MX' NOT NULL,
	next_mrn INTEGER DEFAULT '1' NOT NULL,
	booking_horizon_days INTEGER DEFAULT '60' NOT NULL,
	min_notice_minutes INTEGER DEFAULT '60' NOT NULL,
	cancel_cutoff_minutes INTEGER DEFAULT '120' NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	CONSTRAINT pk_clinic PRIMARY KEY (id),
	CONSTRAINT uq_clinic_slug UNIQUE (slug)
);

CREATE TABLE patient_search_token (
	clinic_id CHAR(32) NOT NULL,
	token VARCHAR(64) NOT NULL,
	patient_id CHAR(32) NOT NULL,
	family_name VARCHAR(100) NOT NULL,
	given_name VARCHAR(100) NOT NULL,
	CONSTRAINT pk_patient_search_token PRIMARY KEY (clinic_id, token, patient_id)
);

CREATE INDEX ix_patient_search_token_patient ON patient_search_token (clinic_id, patient_id);

CREATE INDEX ix_patient_search_token_lookup ON patient_search_token (clinic_id, token);

CREATE TABLE login_throttle (
	"key" VARCHAR(128) NOT NULL,
	failures INTEGER NOT NULL,
	window_started_at DATETIME NOT NULL,
	locked_until DATETIME,
	CONSTRAINT pk_login_throttle PRIMARY KEY ("key")
);

CREATE TABLE staff_user (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	email VARCHAR(320) NOT NULL,
	full_name VARCHAR(200) NOT NULL,
	role VARCHAR(20) NOT NULL,
	password_hash VARCHAR(200) NOT NULL,
	is_active BOOLEAN DEFAULT 'true' NOT NULL,
	server_version BIGINT DEFAULT '0' NOT NULL,
	version_xid BIGINT,
	updated_hlc VARCHAR(40),
	field_stamps JSON,
	updated_by_device CHAR(32),
	deleted_at DATETIME,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	CONSTRAINT pk_staff_user PRIMARY KEY (clinic_id, id),
	CONSTRAINT uq_staff_user_clinic_id_email UNIQUE (clinic_id, email),
	CONSTRAINT fk_staff_user_clinic_id_clinic FOREIGN KEY(clinic_id) REFERENCES clinic (id) ON DELETE RESTRICT,
	CONSTRAINT ck_staff_user_role CHECK (role IN ('admin', 'receptionist', 'doctor', 'lab_tech', 'pharmacist')),
	CONSTRAINT ck_staff_user_email_lower CHECK (email = lower(email))
);

CREATE INDEX ix_staff_user_clinic_id_version_xid ON staff_user (clinic_id, version_xid, server_version);

CREATE INDEX ix_staff_user_email ON staff_user (email);

CREATE TABLE device (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	name VARCHAR(200) NOT NULL,
	enrolled_at DATETIME,
	revoked_at DATETIME,
	last_seen_at DATETIME,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	code_hash VARCHAR(64),
	code_expires_at DATETIME,
	secret_hash VARCHAR(64),
	enrolled_by CHAR(32),
	CONSTRAINT pk_device PRIMARY KEY (clinic_id, id),
	CONSTRAINT fk_device_clinic_id_clinic FOREIGN KEY(clinic_id) REFERENCES clinic (id) ON DELETE RESTRICT
);

CREATE INDEX ix_device_code_hash ON device (code_hash) WHERE code_hash IS NOT NULL;

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
	CONSTRAINT pk_patient PRIMARY KEY (clinic_id, id),
	CONSTRAINT uq_patient_clinic_id_mrn UNIQUE (clinic_id, mrn),
	CONSTRAINT fk_patient_clinic_id_clinic FOREIGN KEY(clinic_id) REFERENCES clinic (id) ON DELETE RESTRICT,
	CONSTRAINT ck_patient_sex CHECK (sex IN ('female', 'male', 'other', 'unknown'))
);

CREATE INDEX ix_patient_clinic_id_version_xid ON patient (clinic_id, version_xid, server_version);

CREATE INDEX ix_patient_clinic_id_family_name ON patient (clinic_id, family_name, given_name, id);

CREATE TABLE audit_event (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	occurred_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	actor_user_id CHAR(32),
	actor_device_id CHAR(32),
	client_addr VARCHAR(64),
	action VARCHAR(64) NOT NULL,
	entity VARCHAR(64) NOT NULL,
	entity_id CHAR(32),
	detail JSON,
	CONSTRAINT pk_audit_event PRIMARY KEY (clinic_id, id),
	CONSTRAINT fk_audit_event_clinic_id_clinic FOREIGN KEY(clinic_id) REFERENCES clinic (id) ON DELETE RESTRICT
);

CREATE INDEX ix_audit_event_entity ON audit_event (clinic_id, entity, entity_id);

CREATE TABLE sync_mutation (
	clinic_id CHAR(32) NOT NULL,
	mutation_id CHAR(32) NOT NULL,
	device_id CHAR(32),
	user_id CHAR(32),
	received_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	result JSON,
	CONSTRAINT pk_sync_mutation PRIMARY KEY (clinic_id, mutation_id),
	CONSTRAINT fk_sync_mutation_clinic_id_clinic FOREIGN KEY(clinic_id) REFERENCES clinic (id) ON DELETE RESTRICT
);

CREATE TABLE sync_conflict (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	entity VARCHAR(40) NOT NULL,
	record_id CHAR(32) NOT NULL,
	field VARCHAR(64) NOT NULL,
	kept JSON,
	lost JSON,
	winner VARCHAR(10) NOT NULL,
	mutation_id CHAR(32),
	device_id CHAR(32),
	user_id CHAR(32),
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	resolved_at DATETIME,
	resolved_by CHAR(32),
	CONSTRAINT pk_sync_conflict PRIMARY KEY (clinic_id, id),
	CONSTRAINT fk_sync_conflict_clinic_id_clinic FOREIGN KEY(clinic_id) REFERENCES clinic (id) ON DELETE RESTRICT,
	CONSTRAINT ck_sync_conflict_winner CHECK (winner IN ('device', 'server'))
);

CREATE INDEX ix_sync_conflict_open ON sync_conflict (clinic_id, resolved_at, created_at);

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

CREATE TABLE refresh_token (
	clinic_id CHAR(32) NOT NULL,
	id CHAR(32) NOT NULL,
	family_id CHAR(32) NOT NULL,
	user_id CHAR(32) NOT NULL,
	device_id CHAR(32),
	issued_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL,
	used_at DATETIME,
	revoked_at DATETIME,
	CONSTRAINT pk_refresh_token PRIMARY KEY (clinic_id, id),
	CONSTRAINT fk_refresh_token_clinic_id_user_id_staff_user FOREIGN KEY(clinic_id, user_id) REFERENCES staff_user (clinic_id, id) ON DELETE RESTRICT
);

CREATE INDEX ix_refresh_token_family ON refresh_token (clinic_id, family_id);

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
	CONSTRAINT pk_appointment PRIMARY KEY (clinic_id, id),
	CONSTRAINT fk_appointment_clinic_id_patient_id_patient FOREIGN KEY(clinic_id, patient_id) REFERENCES patient (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT fk_appointment_clinic_id_provider_id_provider FOREIGN KEY(clinic_id, provider_id) REFERENCES provider (clinic_id, id) ON DELETE RESTRICT,
	CONSTRAINT ck_appointment_period CHECK (starts_at < ends_at),
	CONSTRAINT ck_appointment_status CHECK (status IN ('pending', 'booked', 'checked_in', 'in_progress', 'completed', 'cancelled', 'no_show', 'rejected'))
);

CREATE INDEX ix_appointment_active_provider ON appointment (clinic_id, provider_id, starts_at) WHERE status IN ('pending', 'booked', 'checked_in', 'in_progress') AND deleted_at IS NULL;

CREATE INDEX ix_appointment_patient ON appointment (clinic_id, patient_id);

CREATE INDEX ix_appointment_clinic_id_version_xid ON appointment (clinic_id, version_xid, server_version);

CREATE INDEX ix_appointment_provider_starts ON appointment (clinic_id, provider_id, starts_at);

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

CREATE UNIQUE INDEX ix_local_staff_user_id ON staff_user (id);

CREATE UNIQUE INDEX ix_local_patient_id ON patient (id);

CREATE UNIQUE INDEX ix_local_provider_id ON provider (id);

CREATE UNIQUE INDEX ix_local_availability_rule_id ON availability_rule (id);

CREATE UNIQUE INDEX ix_local_availability_exception_id ON availability_exception (id);

CREATE UNIQUE INDEX ix_local_appointment_id ON appointment (id);
