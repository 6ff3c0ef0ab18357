/* Staff card (職員証) ceremonies for renkei: the only script of the portal, written by hand, no dependencies.
 *
 * A page with <form id="webauthn-form" data-webauthn="get|create" data-options="…" data-field="…"> gets a
 * button (#webauthn-start) that calls navigator.credentials.get()/create() with the server's options, puts
 * the credential as JSON into the hidden field named by data-field, and submits the form. The options are
 * PublicKeyCredential*Options JSON from py_webauthn, whose binary fields are base64url strings.
 */
(function () {
  "use strict";

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeDescriptors(list) {
    (list || []).forEach(function (descriptor) { descriptor.id = fromBase64url(descriptor.id); });
  }

  function requestOptions(options) {
    options.challenge = fromBase64url(options.challenge);
    decodeDescriptors(options.allowCredentials);
    return options;
  }

  function creationOptions(options) {
    options.challenge = fromBase64url(options.challenge);
    options.user.id = fromBase64url(options.user.id);
    decodeDescriptors(options.excludeCredentials);
    return options;
  }

  function credentialJson(credential) {
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toBase64url(response.clientDataJSON) }
    };
    if (credential.authenticatorAttachment) { json.authenticatorAttachment = credential.authenticatorAttachment; }
    if (response.authenticatorData) {
      json.response.authenticatorData = toBase64url(response.authenticatorData);
      json.response.signature = toBase64url(response.signature);
      if (response.userHandle) { json.response.userHandle = toBase64url(response.userHandle); }
    }
    if (response.attestationObject) {
      json.response.attestationObject = toBase64url(response.attestationObject);
      if (response.getTransports) { json.response.transports = response.getTransports(); }
    }
    return json;
  }

  var form = document.getElementById("webauthn-form");
  if (!form) { return; }
  var error = document.getElementById("webauthn-error");

  function show(message) {
    error.textContent = message;
    error.hidden = false;
  }

  document.getElementById("webauthn-start").addEventListener("click", function () {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      show(error.dataset.unsupported);
      return;
    }
    error.hidden = true;
    var options = JSON.parse(form.dataset.options);
    var ceremony = form.dataset.webauthn === "create"
      ? navigator.credentials.create({ publicKey: creationOptions(options) })
      : navigator.credentials.get({ publicKey: requestOptions(options) });
    ceremony.then(function (credential) {
      form.elements[form.dataset.field].value = JSON.stringify(credentialJson(credential));
      form.submit();
    }).catch(function () {
      show(error.dataset.failed);
    });
  });
}());
