package apichecks

import (
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// A03 used to count every Forbidden and Invalid as "refused". Who refused now
// matters: RBAC and admission refuse a pod, a quota or an invalid object do not.
func TestRefusedBy(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	for want, err := range map[Refusal]error{
		RefusalRBAC:      apierrors.NewForbidden(pods, "", errors.New(`User "system:serviceaccount:ws:default" cannot create resource "pods" in API group "" in the namespace "ws"`)),
		RefusalAdmission: apierrors.NewForbidden(pods, "p", errors.New(`violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)`)),
		RefusalQuota:     apierrors.NewForbidden(pods, "p", errors.New("exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1")),
		RefusalInvalid:   apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", field.ErrorList{field.Required(field.NewPath("spec", "containers"), "")}),
		RefusalOther:     errors.New("connection refused"),
	} {
		if got := RefusedBy(err); got != want {
			t.Errorf("%v: %s, want %s", err, got, want)
		}
	}
}
