"""Spanish for prescribing, the prescriber's key, and the pharmacy and lab workspaces
(merged into `desktop.ui.i18n`).

Besides the screens' own words, it holds the fixed sentences the operations and the
server answer with (desktop.operations.signing, prescriptions, pharmacy_queue,
lab_worklist; the server's prescription and lab refusals), so a refusal reads in Spanish
too."""

from __future__ import annotations

SPANISH: dict[str, str] = {
    # the prescription form
    "New prescription": "Nueva receta",
    "Prescription": "Receta",
    "Add a medicine": "Agregar un medicamento",
    "Search by name (English or Spanish) or ATC code":
        "Buscar por nombre (español o inglés) o código ATC",
    "Add": "Agregar",
    "Remove": "Quitar",
    "No medicines yet: search above and add one.":
        "Aún no hay medicamentos: búsquelos arriba y agréguelos.",
    "Strength": "Concentración",
    "Form": "Forma",
    "Route": "Vía",
    "Dose": "Dosis",
    "Frequency": "Frecuencia",
    "Duration (days)": "Duración (días)",
    "Quantity": "Cantidad",
    "Refills": "Repeticiones",
    "Instructions": "Indicaciones",
    "e.g. 1 {form}": "p. ej. 1 {form}",
    "e.g. every 8 hours": "p. ej. cada 8 horas",
    "e.g. take with food": "p. ej. tomar con alimentos",
    "once a day": "una vez al día",
    "every 12 hours": "cada 12 horas",
    "every 8 hours": "cada 8 horas",
    "every 6 hours": "cada 6 horas",
    "at bedtime": "al acostarse",
    "when needed": "si es necesario",
    "Notes for the pharmacist (optional)": "Notas para el farmacéutico (opcional)",
    "Allergies: {list}": "Alergias: {list}",
    "No known allergies recorded.": "Sin alergias conocidas registradas.",
    "born {date}": "nacido/a el {date}",
    "date of birth unknown": "fecha de nacimiento desconocida",
    "This patient is not on this computer.": "Este paciente no está en este equipo.",
    "A prescription holds at most {n} medicines; sign this one and write another.":
        "Una receta admite como máximo {n} medicamentos; firme esta y escriba otra.",
    "Line {n}: choose the strength.": "Línea {n}: elija la concentración.",
    "Line {n}: enter the dose (for example 1 tablet).":
        "Línea {n}: ingrese la dosis (por ejemplo 1 comprimido).",
    "Line {n}: enter how often it is taken.": "Línea {n}: ingrese cada cuánto se toma.",
    "Line {n}: enter the quantity to dispense.": "Línea {n}: ingrese la cantidad a dispensar.",
    # pharmaceutical forms and routes
    "tablet": "comprimido",
    "capsule": "cápsula",
    "suspension": "suspensión",
    "solution": "solución",
    "syrup": "jarabe",
    "injection": "inyectable",
    "cream": "crema",
    "ointment": "ungüento",
    "gel": "gel",
    "inhaler": "inhalador",
    "drops": "gotas",
    "powder": "polvo",
    "suppository": "supositorio",
    "patch": "parche",
    "nebuliser solution": "solución para nebulizar",
    "oral": "oral",
    "intravenous": "intravenosa",
    "intramuscular": "intramuscular",
    "subcutaneous": "subcutánea",
    "topical": "tópica",
    "inhaled": "inhalada",
    "sublingual": "sublingual",
    "rectal": "rectal",
    "vaginal": "vaginal",
    "transdermal": "transdérmica",
    "nasal": "nasal",
    # the pharmacy picker
    "Pharmacy": "Farmacia",
    "Search by name, address or registry number":
        "Buscar por nombre, dirección o número de registro",
    "Patient will choose (print)": "El paciente elige (imprimir)",
    "Not sent to a pharmacy: print it and the patient takes it to the pharmacy they choose.":
        "No se envía a una farmacia: imprímala y el paciente la lleva a la farmacia que "
        "elija.",
    "Sent to {pharmacy}.": "Se envía a {pharmacy}.",
    # the safety checks
    "Safety checks": "Controles de seguridad",
    "High": "Alta",
    "Moderate": "Moderada",
    "Reason to go ahead (required)": "Motivo para continuar (obligatorio)",
    "Checking…": "Revisando…",
    "Add a medicine to check it against the patient's allergies and medicines.":
        "Agregue un medicamento para revisarlo contra las alergias y la medicación del "
        "paciente.",
    "No safety warnings.": "Sin advertencias de seguridad.",
    "1 warning still needs a reason (at least {n} characters).":
        "Falta el motivo de 1 advertencia (al menos {n} caracteres).",
    "{count} warnings still need a reason (at least {n} characters).":
        "Falta el motivo de {count} advertencias (al menos {n} caracteres).",
    "Every warning has a reason.": "Todas las advertencias tienen motivo.",
    "Add at least one medicine.": "Agregue al menos un medicamento.",
    "Give a reason for each warning to sign.": "Indique un motivo por advertencia para firmar.",
    "Sign…": "Firmar…",
    "The prescription could not be signed: {error}": "No se pudo firmar la receta: {error}",
    # the step-up
    "Unlock your prescribing key": "Desbloquear su llave de prescripción",
    "Type your password and the code your authenticator app shows now. The key stays open "
    "for {n} minutes.":
        "Escriba su contraseña y el código que muestra ahora su aplicación de autenticación. "
        "La llave queda abierta {n} minutos.",
    "Code": "Código",
    "Unlock": "Desbloquear",
    "Type your password.": "Escriba su contraseña.",
    "Type the 6-digit code your authenticator app shows now.":
        "Escriba el código de 6 dígitos que muestra ahora su aplicación de autenticación.",
    "Too many wrong tries: unlocking your prescribing key is blocked until {time}. Try "
    "again then.":
        "Demasiados intentos fallidos: el desbloqueo de su llave de prescripción está "
        "bloqueado hasta las {time}. Vuelva a intentarlo entonces.",
    "Your prescribing key could not be opened: {error}":
        "No se pudo abrir su llave de prescripción: {error}",
    # the prescriber's key
    "Prescribing key": "Llave de prescripción",
    "Prescribing key…": "Llave de prescripción…",
    "No prescribing key": "Sin llave de prescripción",
    "Not confirmed": "Sin confirmar",
    "Not registered yet": "Aún no registrada",
    "Waiting for the admin's approval": "Esperando la aprobación del administrador",
    "Active": "Activa",
    "Revoked": "Revocada",
    "You have no prescribing key on this computer. Create one to sign prescriptions: you "
    "will need your sign-in password and an authenticator app on your phone.":
        "No tiene una llave de prescripción en este equipo. Cree una para firmar recetas: "
        "necesitará su contraseña de inicio de sesión y una aplicación de autenticación en "
        "su teléfono.",
    "This key was made but never confirmed with a code from your authenticator app, and its "
    "secret is shown only once. Create a new key to start again.":
        "Esta llave se creó pero nunca se confirmó con un código de su aplicación de "
        "autenticación, y su secreto se muestra una sola vez. Cree una llave nueva para "
        "empezar de nuevo.",
    "Your key is confirmed on this computer. It is registered with the server when this "
    "computer is online; then the clinic admin approves it.":
        "Su llave está confirmada en este equipo. Se registra en el servidor cuando este "
        "equipo tenga conexión; luego el administrador de la clínica la aprueba.",
    "Read this fingerprint to the clinic admin: they compare it with the one on their "
    "screen before approving your key. Once approved, it reaches this computer with the "
    "next sync and you can sign, also offline.":
        "Lea esta huella al administrador de la clínica: la compara con la de su pantalla "
        "antes de aprobar su llave. Una vez aprobada, llega a este equipo con la próxima "
        "sincronización y puede firmar, también sin conexión.",
    "You can sign prescriptions on this computer, also offline.":
        "Puede firmar recetas en este equipo, también sin conexión.",
    "This key was revoked and signs nothing any more. Create a new key.":
        "Esta llave fue revocada y ya no firma nada. Cree una llave nueva.",
    "You have no prescribing key on this computer yet. Create one to sign prescriptions.":
        "Aún no tiene una llave de prescripción en este equipo. Cree una para firmar recetas.",
    "Your prescribing key is not confirmed. Open Prescribing key… to finish setting it up.":
        "Su llave de prescripción no está confirmada. Abra Llave de prescripción… para "
        "terminar de configurarla.",
    "Your prescribing key has not reached the server yet: it registers when this computer "
    "is online, then the clinic admin approves it.":
        "Su llave de prescripción aún no llega al servidor: se registra cuando este equipo "
        "tenga conexión y luego el administrador de la clínica la aprueba.",
    "Your prescribing key is waiting for the clinic admin's approval. You can sign once it "
    "is approved and this computer has synced.":
        "Su llave de prescripción espera la aprobación del administrador de la clínica. "
        "Podrá firmar cuando esté aprobada y este equipo se haya sincronizado.",
    "Your prescribing key was revoked. Create a new one to sign prescriptions.":
        "Su llave de prescripción fue revocada. Cree una nueva para firmar recetas.",
    "Will register when online. This computer cannot reach the server now.":
        "Se registrará cuando haya conexión. Este equipo no puede conectarse al servidor "
        "ahora.",
    "Create key…": "Crear llave…",
    "Create key": "Crear llave",
    "Register now": "Registrar ahora",
    "Registering…": "Registrando…",
    "Fingerprint": "Huella",
    "Your prescribing key is protected by your sign-in password and by a code from an "
    "authenticator app on your phone: signing a prescription asks for both.":
        "Su llave de prescripción está protegida por su contraseña de inicio de sesión y por "
        "un código de una aplicación de autenticación en su teléfono: firmar una receta "
        "pide ambos.",
    "Add this key to your authenticator app (Google Authenticator, Microsoft "
    "Authenticator, FreeOTP…): paste the link, or type the secret. It is shown only now; "
    "keep it to yourself.":
        "Agregue esta llave a su aplicación de autenticación (Google Authenticator, "
        "Microsoft Authenticator, FreeOTP…): pegue el enlace o escriba el secreto. Se "
        "muestra solo ahora; no lo comparta.",
    "Link": "Enlace",
    "Secret": "Secreto",
    "Code the app shows now": "Código que muestra ahora la aplicación",
    "Confirm": "Confirmar",
    # desktop.operations.signing
    "The password or the code is wrong.": "La contraseña o el código no son correctos.",
    "That code was used already. Wait for the next code in your authenticator app.":
        "Ese código ya se usó. Espere el siguiente código en su aplicación de autenticación.",
    "Type your password: it protects the key.": "Escriba su contraseña: protege la llave.",
    "That is not the password you sign in with. Your prescribing key is protected by your "
    "sign-in password.":
        "Esa no es la contraseña con la que inicia sesión. Su llave de prescripción está "
        "protegida por su contraseña de inicio de sesión.",
    "You have no prescribing key on this computer yet; create one (Prescribing key…).":
        "Aún no tiene una llave de prescripción en este equipo; cree una (Llave de "
        "prescripción…).",
    "Confirm your prescribing key with a code from your authenticator app first.":
        "Primero confirme su llave de prescripción con un código de su aplicación de "
        "autenticación.",
    "That code does not match. Check that you added the key shown here to your "
    "authenticator app and that the phone's clock is right, then type the code it shows "
    "now.":
        "Ese código no coincide. Revise que agregó la llave que se muestra aquí a su "
        "aplicación de autenticación y que la hora del teléfono es correcta; luego escriba "
        "el código que muestra ahora.",
    "Confirm the key with a code from your authenticator app before registering it.":
        "Confirme la llave con un código de su aplicación de autenticación antes de "
        "registrarla.",
    "You already have a prescribing key on this computer (waiting for approval). Revoke it "
    "first (you or the clinic admin can), then make a new one.":
        "Ya tiene una llave de prescripción en este equipo (esperando aprobación). Revóquela "
        "primero (usted o el administrador de la clínica pueden) y luego cree una nueva.",
    "You already have a prescribing key on this computer (active). Revoke it first (you or "
    "the clinic admin can), then make a new one.":
        "Ya tiene una llave de prescripción en este equipo (activa). Revóquela primero "
        "(usted o el administrador de la clínica pueden) y luego cree una nueva.",
    "Your prescribing key was locked again after 5 minutes. Unlock it with your password "
    "and a new code to sign.":
        "Su llave de prescripción se bloqueó de nuevo tras 5 minutos. Desbloquéela con su "
        "contraseña y un código nuevo para firmar.",
    # desktop.operations.prescriptions
    "Your prescribing key was locked again; unlock it with your password and a new code "
    "to sign.":
        "Su llave de prescripción se bloqueó de nuevo; desbloquéela con su contraseña y un "
        "código nuevo para firmar.",
    "The unlocked key belongs to someone else; sign with your own.":
        "La llave desbloqueada pertenece a otra persona; firme con la suya.",
    "The unlocked key is no longer your prescribing key on this computer; unlock again.":
        "La llave desbloqueada ya no es su llave de prescripción en este equipo; "
        "desbloquee de nuevo.",
    "Your prescribing key was revoked; make a new one (Prescribing key…) and have the "
    "clinic admin approve it.":
        "Su llave de prescripción fue revocada; cree una nueva (Llave de prescripción…) y "
        "pida al administrador de la clínica que la apruebe.",
    "Your prescribing key is waiting for the clinic admin's approval. Once approved, sync "
    "this computer and sign again.":
        "Su llave de prescripción espera la aprobación del administrador de la clínica. "
        "Cuando esté aprobada, sincronice este equipo y firme de nuevo.",
    "Your prescribing key is not registered with the clinic yet; register it while online "
    "(Prescribing key…).":
        "Su llave de prescripción aún no está registrada en la clínica; regístrela con "
        "conexión (Llave de prescripción…).",
    "This patient is not on this computer; sync and try again.":
        "Este paciente no está en este equipo; sincronice y vuelva a intentarlo.",
    "That pharmacy is not in the clinic's directory (or no longer active); choose another "
    "one.":
        "Esa farmacia no está en el directorio de la clínica (o ya no está activa); elija "
        "otra.",
    "Add at least one medicine to the prescription.":
        "Agregue al menos un medicamento a la receta.",
    "1 safety warning still needs a reason (at least 3 characters) before you sign.":
        "Falta el motivo de 1 advertencia de seguridad (al menos 3 caracteres) para firmar.",
    # the pharmacy
    "Prescriptions for your pharmacy": "Recetas para su farmacia",
    "Open (new and received)": "Abiertas (nuevas y recibidas)",
    "Signed": "Firmada",
    "New": "Nueva",
    "Received": "Recibida",
    "Dispensed": "Dispensada",
    "Refused": "Rechazada",
    "Cancelled": "Cancelada",
    "Prescriber": "Prescriptor",
    "Medicine": "Medicamento",
    "Days": "Días",
    "Receive": "Recibir",
    "Dispense": "Dispensar",
    "Refuse": "Rechazar",
    "Refuse…": "Rechazar…",
    "Show more": "Mostrar más",
    "No prescriptions here.": "No hay recetas aquí.",
    "Notes": "Notas",
    "Allergy": "Alergia",
    "Interaction": "Interacción",
    "Duplicate therapy": "Duplicidad terapéutica",
    "Warnings the prescriber acknowledged": "Advertencias que el prescriptor aceptó",
    "Prescribed by {prescriber} on {when}": "Prescrita por {prescriber} el {when}",
    "Signature verified — {prescriber}, key {key}":
        "Firma verificada — {prescriber}, llave {key}",
    "Why does the pharmacy refuse this prescription? The prescriber sees the reason.":
        "¿Por qué la farmacia rechaza esta receta? El prescriptor verá el motivo.",
    "Say why, in at least 3 characters.": "Indique el motivo, en al menos 3 caracteres.",
    "The pharmacy works online, and this computer cannot reach the server now. "
    "Prescriptions show here again when it is back.":
        "La farmacia trabaja en línea, y este equipo no puede conectarse al servidor ahora. "
        "Las recetas vuelven a aparecer aquí cuando haya conexión.",
    "The prescriptions could not be loaded: {error}":
        "No se pudieron cargar las recetas: {error}",
    # desktop.operations.pharmacy_queue and the server's prescription refusals
    "This prescription's signature does not match its content; it may have been altered. "
    "Do not dispense it; contact the prescriber.":
        "La firma de esta receta no coincide con su contenido; puede haber sido alterada. "
        "No la dispense; comuníquese con el prescriptor.",
    "This prescription was signed with a key that has been revoked. Do not dispense it; "
    "contact the prescriber.":
        "Esta receta se firmó con una llave que fue revocada. No la dispense; comuníquese "
        "con el prescriptor.",
    "The prescriber's key is not approved by the clinic. Do not dispense it; contact the "
    "prescriber.":
        "La llave del prescriptor no está aprobada por la clínica. No la dispense; "
        "comuníquese con el prescriptor.",
    "Say why the prescription is refused (at least 3 characters).":
        "Indique por qué se rechaza la receta (al menos 3 caracteres).",
    "This prescription has not been received yet: mark it received first, then dispensed.":
        "Esta receta aún no se ha recibido: márquela primero como recibida y luego como "
        "dispensada.",
    "Your account is not linked to a pharmacy yet, so no prescriptions reach you. Ask the "
    "clinic admin to link it to your pharmacy.":
        "Su cuenta aún no está vinculada a una farmacia, así que no le llegan recetas. Pida "
        "al administrador de la clínica que la vincule a su farmacia.",
    "Prescriptions are for the clinic's doctors and the pharmacy they are sent to.":
        "Las recetas son para los médicos de la clínica y la farmacia a la que se envían.",
    # the lab
    "Lab": "Laboratorio",
    "Lab worklist": "Lista de trabajo del laboratorio",
    "Open orders": "Órdenes abiertas",
    "Ordered": "Solicitada",
    "Sample received": "Muestra recibida",
    "Processing": "En proceso",
    "Cancel…": "Cancelar…",
    "Cancel order": "Cancelar orden",
    "Priority": "Prioridad",
    "Tests": "Exámenes",
    "URGENT": "URGENTE",
    "routine": "rutina",
    "Test": "Examen",
    "Analyte": "Analito",
    "Value": "Valor",
    "Unit": "Unidad",
    "Flag": "Marca",
    "normal": "normal",
    "low": "bajo",
    "high": "alto",
    "critical low": "crítico bajo",
    "critical high": "crítico alto",
    "abnormal": "anormal",
    "Save results": "Guardar resultados",
    "Clinical information": "Información clínica",
    "Ordered by {doctor} on {when}": "Solicitada por {doctor} el {when}",
    "No lab orders here.": "No hay órdenes de laboratorio aquí.",
    "Why is the order cancelled (for example: sample haemolysed)?":
        "¿Por qué se cancela la orden (por ejemplo: muestra hemolizada)?",
    "The lab works online, and this computer cannot reach the server now. The worklist "
    "shows here again when it is back.":
        "El laboratorio trabaja en línea, y este equipo no puede conectarse al servidor "
        "ahora. La lista de trabajo vuelve a aparecer aquí cuando haya conexión.",
    "The worklist could not be loaded: {error}":
        "No se pudo cargar la lista de trabajo: {error}",
    "Enter results for {tests} before completing the order.":
        "Ingrese resultados de {tests} antes de completar la orden.",
    # desktop.operations.lab_worklist
    "Enter at least one result.": "Ingrese al menos un resultado.",
    "Say why the order is cancelled (for example: sample haemolysed).":
        "Indique por qué se cancela la orden (por ejemplo: muestra hemolizada).",
    "The reason needs 3 to 500 characters.": "El motivo necesita de 3 a 500 caracteres.",
}
