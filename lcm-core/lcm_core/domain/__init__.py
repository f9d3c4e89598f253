"""Value objects and enums shared by the control plane and the controllers."""
